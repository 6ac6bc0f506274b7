"""Listen: fetch (poll) and receive (webhooks) mentions, one cursor per source."""
