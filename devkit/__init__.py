"""Development kit: reference servers and tools, never installed with the product."""
