-- One database per service (docker-compose): each keeps its own migration history.
CREATE DATABASE oauth;
CREATE DATABASE api;
