-- The energy-efficiency bill (issue 15, item 5; enterprises/efficiency_bill.py,
-- docs/green_services.md): a meter may say which class of equipment it measures, so that the
-- bill shows the metered use by equipment class (Huzhou's bill: "by energy kind and equipment
-- class") as well as by site. Optional: NULL is a meter registered without a class (every
-- meter before this migration); the bill lists those as "unclassified". The classes are
-- enterprises.energy_schemas.EquipmentClass.
ALTER TABLE enterprise_meters
    ADD COLUMN equipment_class text CHECK (equipment_class IN (
        'production_line', 'air_compressor', 'pumps_fans', 'boiler', 'furnace_kiln', 'hvac',
        'lighting', 'office', 'other'));
