DROP INDEX users_owner_name_prefix;
DROP INDEX users_owner_display_name;
DROP INDEX users_owner_phone;
DROP INDEX users_owner_email;
DROP INDEX users_owner_union;
DROP INDEX users_owner_created;
DROP INDEX users_owner_wechat;
DROP INDEX wechat_identities_openid;
