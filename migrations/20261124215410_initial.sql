-- Create enum type "order_status"
CREATE TYPE "public"."order_status" AS ENUM ('pending', 'paid', 'shipped', 'cancelled');
-- Create "customers" table
CREATE TABLE "public"."customers" ("id" bigserial NOT NULL, "email" character varying(320) NOT NULL, "full_name" character varying(200) NOT NULL, "is_active" boolean NOT NULL DEFAULT true, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ("id"));
-- Create index "uq_customers_email" to table: "customers"
CREATE UNIQUE INDEX "uq_customers_email" ON "public"."customers" ("email");
-- Set comment to table: "customers"
COMMENT ON TABLE "public"."customers" IS 'People and companies that place orders';
-- Set comment to column: "email" on table: "customers"
COMMENT ON COLUMN "public"."customers" ."email" IS 'Login and contact address';
-- Create "orders" table
CREATE TABLE "public"."orders" ("id" bigserial NOT NULL, "customer_id" bigint NOT NULL, "status" "public"."order_status" NOT NULL DEFAULT 'pending', "placed_at" timestamptz NULL, "total" numeric(12,2) NOT NULL DEFAULT 0, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ("id"), CONSTRAINT "fk_orders_customer_id_customers" FOREIGN KEY ("customer_id") REFERENCES "public"."customers" ("id") ON UPDATE NO ACTION ON DELETE RESTRICT);
-- Create index "ix_orders_customer_id" to table: "orders"
CREATE INDEX "ix_orders_customer_id" ON "public"."orders" ("customer_id");
-- Create index "ix_orders_open" to table: "orders"
CREATE INDEX "ix_orders_open" ON "public"."orders" ("created_at") WHERE (status = 'pending'::order_status);
-- Create "products" table
CREATE TABLE "public"."products" ("id" bigserial NOT NULL, "sku" character varying(64) NOT NULL, "name" character varying(200) NOT NULL, "description" text NULL, "price" numeric(12,2) NOT NULL, "stock" integer NOT NULL DEFAULT 0, "is_archived" boolean NOT NULL DEFAULT false, "created_at" timestamptz NOT NULL DEFAULT now(), "updated_at" timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ("id"), CONSTRAINT "ck_products_price_not_negative" CHECK (price >= (0)::numeric), CONSTRAINT "ck_products_stock_not_negative" CHECK (stock >= 0));
-- Create index "ix_products_active_name" to table: "products"
CREATE INDEX "ix_products_active_name" ON "public"."products" ("name") WHERE (is_archived = false);
-- Create index "uq_products_sku" to table: "products"
CREATE UNIQUE INDEX "uq_products_sku" ON "public"."products" ("sku");
-- Create "order_items" table
CREATE TABLE "public"."order_items" ("id" bigserial NOT NULL, "order_id" bigint NOT NULL, "product_id" bigint NOT NULL, "quantity" integer NOT NULL DEFAULT 1, "unit_price" numeric(12,2) NOT NULL, PRIMARY KEY ("id"), CONSTRAINT "fk_order_items_order_id_orders" FOREIGN KEY ("order_id") REFERENCES "public"."orders" ("id") ON UPDATE NO ACTION ON DELETE CASCADE, CONSTRAINT "fk_order_items_product_id_products" FOREIGN KEY ("product_id") REFERENCES "public"."products" ("id") ON UPDATE NO ACTION ON DELETE NO ACTION, CONSTRAINT "ck_order_items_quantity_positive" CHECK (quantity > 0));
-- Create index "ix_order_items_product_id" to table: "order_items"
CREATE INDEX "ix_order_items_product_id" ON "public"."order_items" ("product_id");
-- Create index "uq_order_items_order_id_product_id" to table: "order_items"
CREATE UNIQUE INDEX "uq_order_items_order_id_product_id" ON "public"."order_items" ("order_id", "product_id");
-- Corrections: Atlas v0.13.1 drops these details; they make the database match the models exactly
ALTER TABLE "public"."customers" RENAME CONSTRAINT "customers_pkey" TO "pk_customers";
ALTER TABLE "public"."order_items" RENAME CONSTRAINT "order_items_pkey" TO "pk_order_items";
ALTER TABLE "public"."orders" RENAME CONSTRAINT "orders_pkey" TO "pk_orders";
ALTER TABLE "public"."products" RENAME CONSTRAINT "products_pkey" TO "pk_products";
ALTER TABLE "public"."customers" ADD CONSTRAINT "uq_customers_email" UNIQUE USING INDEX "uq_customers_email";
ALTER TABLE "public"."order_items" ADD CONSTRAINT "uq_order_items_order_id_product_id" UNIQUE USING INDEX "uq_order_items_order_id_product_id";
ALTER TABLE "public"."products" ADD CONSTRAINT "uq_products_sku" UNIQUE USING INDEX "uq_products_sku";
