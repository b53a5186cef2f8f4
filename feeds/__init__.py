"""The network side of tokenbook: MQTT gateway, market data and broker clients."""
