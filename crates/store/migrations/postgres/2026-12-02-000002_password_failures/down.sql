DROP TABLE password_failures;
