"""Put on PYTHONPATH by tests/conftest.py in the fast lane only: every Python subprocess a
test starts refuses the model libraries too (see fast_lane_guard.py)."""

import fast_lane_guard

fast_lane_guard.install()
