// The Templates module; see DESIGN.md for what it owns.
