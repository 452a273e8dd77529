"""Network front doors: decode with ``protocols``, make durable, then answer."""
