"""Tests of the verifiable-credentials kit (ler.credentials)."""
