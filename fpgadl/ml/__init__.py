"""The ML side: recipes, training, datasets and task metrics (the zoo registers its models here)."""
