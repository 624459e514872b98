"""The pages of ERP sync, one module per screen; every view is a class, and stays thin: input through forms,
work through services, lists from querysets restricted to what the user may see."""
