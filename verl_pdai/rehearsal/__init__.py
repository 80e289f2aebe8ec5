"""The rehearsal of a recipe launch on CPU: the recipe's own composed config through verl's fit loop, with only
what GPUs decide scaled down or stood in for (see docs/recipes.md, "Rehearsal")."""
