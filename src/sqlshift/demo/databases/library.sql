PRAGMA foreign_keys = ON;
CREATE TABLE author (
  author_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  country TEXT,
  birth_year INTEGER
);
CREATE TABLE book (
  book_id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  author_id INTEGER NOT NULL,
  genre TEXT,
  year_published INTEGER,
  pages INTEGER,
  FOREIGN KEY (author_id) REFERENCES author(author_id)
);
CREATE TABLE member (
  member_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT,
  join_year INTEGER
);
CREATE TABLE loan (
  loan_id INTEGER PRIMARY KEY,
  book_id INTEGER NOT NULL,
  member_id INTEGER NOT NULL,
  loan_date TEXT,
  return_date TEXT,
  FOREIGN KEY (book_id) REFERENCES book(book_id),
  FOREIGN KEY (member_id) REFERENCES member(member_id)
);

INSERT INTO author (author_id, name, country, birth_year) VALUES (1, 'Mara Lindqvist', 'Sweden', 1952);
INSERT INTO author (author_id, name, country, birth_year) VALUES (2, 'Tomas Okafor', 'Nigeria', 1968);
INSERT INTO author (author_id, name, country, birth_year) VALUES (3, 'Elena Vasquez', 'Mexico', 1975);
INSERT INTO author (author_id, name, country, birth_year) VALUES (4, 'Hiro Tanabe', 'Japan', 1949);
INSERT INTO author (author_id, name, country, birth_year) VALUES (5, 'Claire Dubois', 'France', 1981);
INSERT INTO author (author_id, name, country, birth_year) VALUES (6, 'Samuel Greer', 'USA', 1960);
INSERT INTO author (author_id, name, country, birth_year) VALUES (7, 'Ana Petrova', 'Bulgaria', 1972);
INSERT INTO author (author_id, name, country, birth_year) VALUES (8, 'Liam Byrne', 'Ireland', 1988);
INSERT INTO author (author_id, name, country, birth_year) VALUES (9, 'Priya Raman', 'India', 1979);
INSERT INTO author (author_id, name, country, birth_year) VALUES (10, 'Jonas Weber', 'Germany', 1957);
INSERT INTO author (author_id, name, country, birth_year) VALUES (11, 'Grace Mwangi', 'Kenya', 1984);
INSERT INTO author (author_id, name, country, birth_year) VALUES (12, 'Oscar Lindgren', 'Sweden', 1990);

INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (1, 'The Quiet Harbour', 6, 'Science Fiction', 1997, 173);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (2, 'Stars Over Tundra', 11, 'History', 1971, 226);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (3, 'A Map of Salt', 5, 'Poetry', 2008, 279);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (4, 'The Clockmaker''s Daughter', 10, 'Biography', 1982, 332);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (5, 'Northern Lights Again', 4, 'Fantasy', 2019, 385);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (6, 'River of Glass', 9, 'Mystery', 1993, 438);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (7, 'The Last Orchard', 3, 'Science Fiction', 1967, 491);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (8, 'Iron and Ivy', 8, 'History', 2004, 544);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (9, 'Paper Moons', 2, 'Poetry', 1978, 597);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (10, 'The Hollow Crown of Ash', 7, 'Biography', 2015, 170);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (11, 'Silent Engines', 1, 'Fantasy', 1989, 223);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (12, 'Winter Ledger', 6, 'Mystery', 1963, 276);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (13, 'The Glass Archive', 11, 'Science Fiction', 2000, 329);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (14, 'Songs for the Ferry', 5, 'History', 1974, 382);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (15, 'Copper Skies', 10, 'Poetry', 2011, 435);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (16, 'The Long Table', 4, 'Biography', 1985, 488);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (17, 'Beneath the Lantern', 9, 'Fantasy', 2022, 541);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (18, 'Orbit of Dust', 3, 'Mystery', 1996, 594);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (19, 'The Tailor of Lagos', 8, 'Science Fiction', 1970, 167);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (20, 'Seven Bridges', 2, 'History', 2007, 220);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (21, 'Empire of Reeds', 7, 'Poetry', 1981, 273);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (22, 'The Blue Notebook', 1, 'Biography', 2018, 326);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (23, 'Harvest of Storms', 6, 'Fantasy', 1992, 379);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (24, 'Lines from the Coast', 11, 'Mystery', 1966, 432);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (25, 'The Cartographer', 5, 'Science Fiction', 2003, 485);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (26, 'Echoes in Granite', 10, 'History', 1977, 538);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (27, 'Midnight Garden', 4, 'Poetry', 2014, 591);
INSERT INTO book (book_id, title, author_id, genre, year_published, pages) VALUES (28, 'The Salt Road', 9, 'Biography', 1988, 164);

INSERT INTO member (member_id, name, city, join_year) VALUES (1, 'Alice Moreau', 'Springfield', 2013);
INSERT INTO member (member_id, name, city, join_year) VALUES (2, 'Ben Carter', 'Riverton', 2016);
INSERT INTO member (member_id, name, city, join_year) VALUES (3, 'Chloe Nguyen', 'Springfield', 2019);
INSERT INTO member (member_id, name, city, join_year) VALUES (4, 'David Osei', 'Lakeside', 2022);
INSERT INTO member (member_id, name, city, join_year) VALUES (5, 'Eva Rossi', 'Riverton', 2011);
INSERT INTO member (member_id, name, city, join_year) VALUES (6, 'Farid Haddad', 'Hillview', 2014);
INSERT INTO member (member_id, name, city, join_year) VALUES (7, 'Gina Park', 'Springfield', 2017);
INSERT INTO member (member_id, name, city, join_year) VALUES (8, 'Henry Olsen', 'Lakeside', 2020);
INSERT INTO member (member_id, name, city, join_year) VALUES (9, 'Isla Murphy', 'Hillview', 2023);
INSERT INTO member (member_id, name, city, join_year) VALUES (10, 'Jack Silva', 'Riverton', 2012);
INSERT INTO member (member_id, name, city, join_year) VALUES (11, 'Kira Novak', 'Springfield', 2015);
INSERT INTO member (member_id, name, city, join_year) VALUES (12, 'Leo Brandt', 'Lakeside', 2018);
INSERT INTO member (member_id, name, city, join_year) VALUES (13, 'Maya Cohen', 'Hillview', 2021);
INSERT INTO member (member_id, name, city, join_year) VALUES (14, 'Nils Berg', 'Riverton', 2010);
INSERT INTO member (member_id, name, city, join_year) VALUES (15, 'Olga Ivanova', 'Springfield', 2013);
INSERT INTO member (member_id, name, city, join_year) VALUES (16, 'Paul Mensah', 'Lakeside', 2016);

INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (1, 11, 3, '2023-07-02', '2023-07-05');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (2, 18, 2, '2023-06-19', '2023-06-22');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (3, 17, 4, '2023-01-03', '2023-01-09');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (4, 14, 2, '2023-04-03', '2023-04-10');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (5, 14, 1, '2023-10-04', '2023-10-08');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (6, 21, 11, '2023-10-02', NULL);
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (7, 19, 10, '2023-07-02', '2023-07-06');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (8, 2, 9, '2023-03-10', '2023-03-16');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (9, 5, 9, '2023-02-19', '2023-02-24');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (10, 18, 14, '2023-11-06', '2023-11-09');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (11, 19, 10, '2023-11-07', '2023-11-12');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (12, 4, 9, '2023-12-03', NULL);
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (13, 19, 1, '2023-10-07', '2023-10-13');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (14, 22, 9, '2023-07-11', '2023-07-17');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (15, 19, 8, '2023-06-10', '2023-06-14');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (16, 26, 3, '2023-12-08', '2023-12-11');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (17, 19, 5, '2023-09-16', '2023-09-21');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (18, 24, 8, '2023-05-20', NULL);
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (19, 3, 2, '2023-09-14', '2023-09-18');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (20, 25, 6, '2023-03-16', '2023-03-22');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (21, 2, 11, '2023-02-18', '2023-02-25');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (22, 26, 14, '2023-06-11', '2023-06-19');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (23, 12, 10, '2023-08-19', '2023-08-25');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (24, 3, 14, '2023-02-09', NULL);
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (25, 16, 12, '2023-11-03', '2023-11-06');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (26, 24, 12, '2023-05-19', '2023-05-27');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (27, 15, 5, '2023-12-13', '2023-12-21');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (28, 12, 1, '2023-08-12', '2023-08-16');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (29, 20, 2, '2023-08-02', '2023-08-06');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (30, 25, 5, '2023-03-08', NULL);
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (31, 13, 7, '2023-08-03', '2023-08-07');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (32, 15, 7, '2023-09-09', '2023-09-13');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (33, 14, 14, '2023-09-09', '2023-09-17');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (34, 14, 6, '2023-11-13', '2023-11-17');
INSERT INTO loan (loan_id, book_id, member_id, loan_date, return_date) VALUES (35, 5, 2, '2023-03-05', '2023-03-09');
