"""Direct logit attribution at the answer position: the residual split into what each component wrote, read
through the final norm with its scale frozen, so the parts add up to the model's logit (002 and 003 use it)."""
