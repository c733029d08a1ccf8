DROP TABLE rollup_days;
DROP TABLE record_rollups;
DROP TABLE records;
