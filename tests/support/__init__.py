"""Test support: private Redis servers, clusters, sentinels and a delaying TCP proxy."""
