-- One database per service: each service owns its data.
CREATE DATABASE identity;
CREATE DATABASE profile;
CREATE DATABASE matching;
CREATE DATABASE collaboration;
CREATE DATABASE connector;
CREATE DATABASE portal;
