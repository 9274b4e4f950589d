-- Each order line keeps its total: quantity * unit_price at the time it was placed.
-- Added nullable, filled from the existing lines, then made NOT NULL (the models' definition).
ALTER TABLE "public"."order_items" ADD COLUMN "line_total" numeric(12,2) NULL;
UPDATE "public"."order_items" SET "line_total" = "quantity" * "unit_price";
ALTER TABLE "public"."order_items" ALTER COLUMN "line_total" SET NOT NULL;
