// The ENA module; see DESIGN.md for what it owns.
