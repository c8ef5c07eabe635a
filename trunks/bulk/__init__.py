"""Bulk provisioning: a spreadsheet checked row by row, then created by background workers."""
