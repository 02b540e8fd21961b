"""The county center's web app: Chinese pages served by fieldsync itself, reading and writing
through the public API only (`client.Api`), so a page can never show what the API refuses."""
