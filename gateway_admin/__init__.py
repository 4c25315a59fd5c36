"""The admin as a product: the "LLM Gateway" admin site (branding, a home page grouped
by what people do, internals out of the way), its favicon and its layout fixes."""
