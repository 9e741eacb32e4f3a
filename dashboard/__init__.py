"""What the dashboard's pages share: cached loaders (``loaders``) and the pickers and other
widgets (``widgets``). Not a page: ``app.py`` routes only to the files in ``pages/``."""
