"""Test helpers that ship with ragidx: `ragidx.testing.server`, a fault-injecting embedding
server (`python -m ragidx.testing.server --help`)."""
