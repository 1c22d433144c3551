"""Recorder: archival copies of calls, written without decoding or encoding.

The synchronous cores live here: RTP depacketizing (`depacketizer`), the shared timeline
(`timeline`), the encrypted segment format (`segment_crypto`, written by `encrypted_writer`, read
by `encrypted_reader`), Matroska segments (`writer`, with `matroska` for what the export shares),
one recording (`session`), the archive manifest (`manifest`) and the export to a playable file
(`export`). The process shell (`service`) runs them on what the SFU's tap sends; the control
plane starts the process and exports and verifies its files.
"""
