"""`anchormix advise`: advice for your own stems from the command line."""
