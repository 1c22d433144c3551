"""Recorder: archival copies of calls, written without decoding or encoding.

The synchronous cores live here: RTP depacketizing (`depacketizer`), the shared timeline
(`timeline`), the encrypted segment format (`segment_crypto`), Matroska segments (`writer`), one
recording (`session`), the archive manifest (`manifest`) and the export to a playable file
(`export`). The process shell, the SFU tap and the control API use these classes.
"""
