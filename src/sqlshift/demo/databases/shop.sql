PRAGMA foreign_keys = ON;
CREATE TABLE customer (
  customer_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT,
  signup_year INTEGER
);
CREATE TABLE product (
  product_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  category TEXT,
  price REAL,
  stock INTEGER
);
CREATE TABLE orders (
  order_id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL,
  order_date TEXT,
  status TEXT,
  FOREIGN KEY (customer_id) REFERENCES customer(customer_id)
);
CREATE TABLE order_item (
  order_id INTEGER NOT NULL,
  product_id INTEGER NOT NULL,
  quantity INTEGER,
  PRIMARY KEY (order_id, product_id),
  FOREIGN KEY (order_id) REFERENCES orders(order_id),
  FOREIGN KEY (product_id) REFERENCES product(product_id)
);

INSERT INTO customer (customer_id, name, city, signup_year) VALUES (1, 'Arjun Mehta', 'Springfield', 2023);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (2, 'Beatriz Lima', 'Riverton', 2022);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (3, 'Carl Jansen', 'Lakeside', 2021);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (4, 'Deepa Iyer', 'Springfield', 2020);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (5, 'Emil Novak', 'Hillview', 2019);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (6, 'Fatima Zahra', 'Riverton', 2018);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (7, 'Gustav Berg', 'Lakeside', 2023);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (8, 'Helen Ward', 'Springfield', 2022);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (9, 'Ines Duarte', 'Hillview', 2021);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (10, 'Jamal Wright', 'Riverton', 2020);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (11, 'Kaori Ito', 'Springfield', 2019);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (12, 'Lars Moen', 'Lakeside', 2018);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (13, 'Mira Shah', 'Hillview', 2023);
INSERT INTO customer (customer_id, name, city, signup_year) VALUES (14, 'Noah Adams', 'Springfield', 2022);

INSERT INTO product (product_id, name, category, price, stock) VALUES (1, 'Ceramic Mug', 'Kitchen', 8.5, 13);
INSERT INTO product (product_id, name, category, price, stock) VALUES (2, 'Chef Knife', 'Kitchen', 34.0, 26);
INSERT INTO product (product_id, name, category, price, stock) VALUES (3, 'Cutting Board', 'Kitchen', 15.0, 39);
INSERT INTO product (product_id, name, category, price, stock) VALUES (4, 'Tea Kettle', 'Kitchen', 27.5, 52);
INSERT INTO product (product_id, name, category, price, stock) VALUES (5, 'Desk Lamp', 'Home', 22.0, 5);
INSERT INTO product (product_id, name, category, price, stock) VALUES (6, 'Wool Blanket', 'Home', 45.0, 18);
INSERT INTO product (product_id, name, category, price, stock) VALUES (7, 'Wall Clock', 'Home', 18.0, 31);
INSERT INTO product (product_id, name, category, price, stock) VALUES (8, 'Notebook', 'Stationery', 3.5, 44);
INSERT INTO product (product_id, name, category, price, stock) VALUES (9, 'Fountain Pen', 'Stationery', 29.0, 57);
INSERT INTO product (product_id, name, category, price, stock) VALUES (10, 'Pencil Set', 'Stationery', 6.0, 10);
INSERT INTO product (product_id, name, category, price, stock) VALUES (11, 'Backpack', 'Outdoor', 55.0, 23);
INSERT INTO product (product_id, name, category, price, stock) VALUES (12, 'Water Bottle', 'Outdoor', 12.0, 36);
INSERT INTO product (product_id, name, category, price, stock) VALUES (13, 'Camping Stove', 'Outdoor', 68.0, 49);
INSERT INTO product (product_id, name, category, price, stock) VALUES (14, 'Headlamp', 'Outdoor', 21.0, 2);
INSERT INTO product (product_id, name, category, price, stock) VALUES (15, 'Picture Frame', 'Home', 11.0, 15);
INSERT INTO product (product_id, name, category, price, stock) VALUES (16, 'Sticky Notes', 'Stationery', 2.5, 28);

INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (1, 5, '2024-02-01', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (2, 10, '2024-05-14', 'shipped');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (3, 7, '2024-09-12', 'pending');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (4, 3, '2024-04-09', 'cancelled');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (5, 8, '2024-01-08', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (6, 10, '2024-08-01', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (7, 2, '2024-02-23', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (8, 8, '2024-07-01', 'shipped');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (9, 9, '2024-07-12', 'pending');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (10, 1, '2024-04-26', 'cancelled');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (11, 1, '2024-06-22', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (12, 3, '2024-04-24', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (13, 6, '2024-06-19', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (14, 5, '2024-06-19', 'shipped');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (15, 2, '2024-08-06', 'pending');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (16, 12, '2024-08-19', 'cancelled');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (17, 8, '2024-03-06', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (18, 3, '2024-09-11', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (19, 11, '2024-09-07', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (20, 10, '2024-02-03', 'shipped');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (21, 2, '2024-07-02', 'pending');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (22, 10, '2024-05-19', 'cancelled');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (23, 5, '2024-06-04', 'delivered');
INSERT INTO orders (order_id, customer_id, order_date, status) VALUES (24, 6, '2024-05-18', 'delivered');

INSERT INTO order_item (order_id, product_id, quantity) VALUES (1, 13, 1);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (1, 15, 4);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (2, 4, 2);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (2, 9, 1);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (3, 2, 4);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (3, 3, 3);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (4, 12, 4);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (5, 4, 2);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (5, 6, 5);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (6, 15, 4);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (7, 7, 1);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (8, 8, 2);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (9, 1, 5);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (10, 1, 3);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (10, 7, 4);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (11, 13, 4);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (12, 11, 3);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (13, 4, 5);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (14, 9, 5);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (15, 2, 5);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (15, 12, 1);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (16, 1, 3);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (16, 13, 1);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (17, 4, 1);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (17, 8, 2);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (18, 2, 3);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (19, 8, 5);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (19, 9, 4);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (20, 13, 2);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (21, 4, 2);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (21, 5, 1);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (22, 2, 3);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (23, 12, 5);
INSERT INTO order_item (order_id, product_id, quantity) VALUES (24, 5, 5);
