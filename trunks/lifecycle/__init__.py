"""Trunks after creation: the portal's record of each trunk it made, finding them, and changing them
(suspend, enable, password, settings) through Crazytel's PATCH /sip-trunks/{id}."""
