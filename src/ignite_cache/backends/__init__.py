"""Cache backends."""
