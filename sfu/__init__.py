"""Selective forwarding unit: forwards RTP between participants without decoding or encoding."""
