-- Modify "customers" table
ALTER TABLE "public"."customers" ALTER COLUMN "full_name" TYPE character varying(300);
