"""The published contract of the residents' mobile API (openapi.json) and its generator."""
