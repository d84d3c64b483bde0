"""Running as a service: systemd readiness and watchdog notifications, shutdown signals."""
