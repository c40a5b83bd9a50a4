// The Disk module; see DESIGN.md for what it owns.
