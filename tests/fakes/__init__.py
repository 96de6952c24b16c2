"""Test doubles for cloud services: real local servers (emulators, fakes) driven by the real SDKs."""
