"""Serial devices: framing, reader protocols, readers addressed by URL, simulators."""
