"""Listen: poll sources with a cursor each, and accept pushed webhook deliveries."""
