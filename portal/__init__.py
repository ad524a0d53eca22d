"""The partnermesh web portal: a backend-for-frontend between browsers and the gateway."""
