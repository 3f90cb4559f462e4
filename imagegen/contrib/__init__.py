"""Optional integrations with other Django applications, each an app of its own."""
