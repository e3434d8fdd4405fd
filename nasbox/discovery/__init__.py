"""Announcing nasbox on the local network: WS-Discovery for Windows (wsdd2), mDNS/DNS-SD for
macOS and Linux (avahi-daemon), NetBIOS names for old clients (nmbd); each opt-in."""
