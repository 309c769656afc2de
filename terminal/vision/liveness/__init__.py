"""Presentation-attack checks (depth, NIR, active challenge, passive MiniFASNet) and their fusion."""
