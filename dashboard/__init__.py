"""Panel dashboard for msgl (issue: the dashboard). Built on msgl_core's public API only."""
