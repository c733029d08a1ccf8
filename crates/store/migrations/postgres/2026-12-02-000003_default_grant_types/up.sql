-- grantTypes is now enforced at the token endpoint: an application stored without any gets
-- Casdoor console's default list, so nothing that worked before stops working.
UPDATE applications
SET grant_types = '["authorization_code","password","client_credentials","token","id_token","refresh_token"]'
WHERE grant_types IN ('', '[]', 'null');
