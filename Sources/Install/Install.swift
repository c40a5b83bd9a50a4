// The Install module; see DESIGN.md for what it owns.
