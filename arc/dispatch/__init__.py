"""The dispatcher: signals in, graded incidents, response plans and guards out."""
