"""Teaching: the course chapter and the exercises, each with checks that name the mistake."""
