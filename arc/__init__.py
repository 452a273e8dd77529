"""ARC: the alarm-receiving-centre server (联网报警运营)."""
