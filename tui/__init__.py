"""The terminal debugger: a Textual app over the replay engine (`retrograde tui`)."""
