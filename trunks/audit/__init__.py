"""The audit log: writer, hash chain, selectors, paging, export, chart, filters, forms, views."""
