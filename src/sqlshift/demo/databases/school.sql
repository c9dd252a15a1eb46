PRAGMA foreign_keys = ON;
CREATE TABLE department (
  dept_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  building TEXT
);
CREATE TABLE teacher (
  teacher_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  dept_id INTEGER,
  hire_year INTEGER,
  salary INTEGER,
  FOREIGN KEY (dept_id) REFERENCES department(dept_id)
);
CREATE TABLE student (
  student_id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  grade_level INTEGER,
  age INTEGER,
  city TEXT
);
CREATE TABLE course (
  course_id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  dept_id INTEGER,
  teacher_id INTEGER,
  credits INTEGER,
  FOREIGN KEY (dept_id) REFERENCES department(dept_id),
  FOREIGN KEY (teacher_id) REFERENCES teacher(teacher_id)
);
CREATE TABLE enrollment (
  student_id INTEGER NOT NULL,
  course_id INTEGER NOT NULL,
  score INTEGER,
  PRIMARY KEY (student_id, course_id),
  FOREIGN KEY (student_id) REFERENCES student(student_id),
  FOREIGN KEY (course_id) REFERENCES course(course_id)
);

INSERT INTO department (dept_id, name, building) VALUES (1, 'Mathematics', 'North Hall');
INSERT INTO department (dept_id, name, building) VALUES (2, 'Biology', 'Science Wing');
INSERT INTO department (dept_id, name, building) VALUES (3, 'History', 'Old Building');
INSERT INTO department (dept_id, name, building) VALUES (4, 'Computer Science', 'Science Wing');
INSERT INTO department (dept_id, name, building) VALUES (5, 'Art', 'East Studio');
INSERT INTO department (dept_id, name, building) VALUES (6, 'Music', 'East Studio');

INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (1, 'Rosa Alvarez', 1, 2002, 45700);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (2, 'Martin Keller', 2, 2009, 49400);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (3, 'Yuki Sato', 3, 2016, 53100);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (4, 'Amara Diallo', 4, 1996, 56800);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (5, 'Peter Hughes', 5, 2003, 60500);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (6, 'Lena Fischer', 1, 2010, 64200);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (7, 'Omar Farouk', 2, 2017, 67900);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (8, 'Sofia Conti', 3, 1997, 71600);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (9, 'Daniel Reyes', 4, 2004, 45300);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (10, 'Ingrid Holm', 5, 2011, 49000);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (11, 'Kwame Asante', 1, 2018, 52700);
INSERT INTO teacher (teacher_id, name, dept_id, hire_year, salary) VALUES (12, 'Nora Quinn', 2, 1998, 56400);

INSERT INTO student (student_id, name, grade_level, age, city) VALUES (1, 'Adam Price', 10, 16, 'Hillview');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (2, 'Bella Ortiz', 11, 16, 'Lakeside');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (3, 'Caleb Wong', 12, 18, 'Riverton');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (4, 'Dina Yusuf', 9, 14, 'Springfield');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (5, 'Ethan Ross', 10, 16, 'Hillview');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (6, 'Fiona Walsh', 11, 16, 'Lakeside');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (7, 'George Lin', 12, 18, 'Riverton');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (8, 'Hana Kim', 9, 14, 'Springfield');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (9, 'Ivan Petrov', 10, 16, 'Hillview');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (10, 'Julia Santos', 11, 16, 'Lakeside');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (11, 'Kofi Boateng', 12, 18, 'Riverton');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (12, 'Lucy Grant', 9, 14, 'Springfield');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (13, 'Mateo Ruiz', 10, 16, 'Hillview');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (14, 'Nadia Rahman', 11, 16, 'Lakeside');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (15, 'Owen Price', 12, 18, 'Riverton');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (16, 'Pia Jensen', 9, 14, 'Springfield');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (17, 'Quinn Taylor', 10, 16, 'Hillview');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (18, 'Rami Aziz', 11, 16, 'Lakeside');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (19, 'Sara Eklund', 12, 18, 'Riverton');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (20, 'Tariq Malik', 9, 14, 'Springfield');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (21, 'Uma Das', 10, 16, 'Hillview');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (22, 'Victor Hugo Lee', 11, 16, 'Lakeside');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (23, 'Wendy Zhao', 12, 18, 'Riverton');
INSERT INTO student (student_id, name, grade_level, age, city) VALUES (24, 'Xavier Boyd', 9, 14, 'Springfield');

INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (1, 'Algebra I', 1, 6, 3);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (2, 'Geometry', 1, 11, 3);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (3, 'Statistics', 1, 1, 3);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (4, 'Cell Biology', 2, 7, 3);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (5, 'Ecology', 2, 12, 3);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (6, 'World History', 3, 3, 2);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (7, 'Ancient Civilizations', 3, 8, 2);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (8, 'Intro to Programming', 4, 4, 3);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (9, 'Data Structures', 4, 9, 3);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (10, 'Drawing', 5, 5, 2);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (11, 'Painting', 5, 10, 2);
INSERT INTO course (course_id, title, dept_id, teacher_id, credits) VALUES (12, 'Choir', 6, NULL, 2);

INSERT INTO enrollment (student_id, course_id, score) VALUES (1, 2, 65);
INSERT INTO enrollment (student_id, course_id, score) VALUES (1, 11, 69);
INSERT INTO enrollment (student_id, course_id, score) VALUES (2, 1, 53);
INSERT INTO enrollment (student_id, course_id, score) VALUES (2, 8, 67);
INSERT INTO enrollment (student_id, course_id, score) VALUES (2, 10, 69);
INSERT INTO enrollment (student_id, course_id, score) VALUES (3, 1, 48);
INSERT INTO enrollment (student_id, course_id, score) VALUES (3, 5, 74);
INSERT INTO enrollment (student_id, course_id, score) VALUES (3, 8, 96);
INSERT INTO enrollment (student_id, course_id, score) VALUES (5, 2, 55);
INSERT INTO enrollment (student_id, course_id, score) VALUES (6, 2, 56);
INSERT INTO enrollment (student_id, course_id, score) VALUES (7, 3, 63);
INSERT INTO enrollment (student_id, course_id, score) VALUES (7, 4, 93);
INSERT INTO enrollment (student_id, course_id, score) VALUES (7, 9, 54);
INSERT INTO enrollment (student_id, course_id, score) VALUES (7, 11, 48);
INSERT INTO enrollment (student_id, course_id, score) VALUES (8, 11, 51);
INSERT INTO enrollment (student_id, course_id, score) VALUES (10, 7, 77);
INSERT INTO enrollment (student_id, course_id, score) VALUES (10, 8, 99);
INSERT INTO enrollment (student_id, course_id, score) VALUES (11, 4, 79);
INSERT INTO enrollment (student_id, course_id, score) VALUES (13, 2, 59);
INSERT INTO enrollment (student_id, course_id, score) VALUES (13, 7, 91);
INSERT INTO enrollment (student_id, course_id, score) VALUES (13, 8, 83);
INSERT INTO enrollment (student_id, course_id, score) VALUES (14, 2, 60);
INSERT INTO enrollment (student_id, course_id, score) VALUES (14, 9, 76);
INSERT INTO enrollment (student_id, course_id, score) VALUES (15, 5, 80);
INSERT INTO enrollment (student_id, course_id, score) VALUES (15, 6, 60);
INSERT INTO enrollment (student_id, course_id, score) VALUES (15, 8, 94);
INSERT INTO enrollment (student_id, course_id, score) VALUES (15, 9, 97);
INSERT INTO enrollment (student_id, course_id, score) VALUES (15, 10, 56);
INSERT INTO enrollment (student_id, course_id, score) VALUES (17, 2, 74);
INSERT INTO enrollment (student_id, course_id, score) VALUES (17, 5, 89);
INSERT INTO enrollment (student_id, course_id, score) VALUES (17, 8, 72);
INSERT INTO enrollment (student_id, course_id, score) VALUES (17, 10, 55);
INSERT INTO enrollment (student_id, course_id, score) VALUES (18, 11, 73);
INSERT INTO enrollment (student_id, course_id, score) VALUES (19, 2, 74);
INSERT INTO enrollment (student_id, course_id, score) VALUES (19, 11, 61);
INSERT INTO enrollment (student_id, course_id, score) VALUES (20, 1, 48);
INSERT INTO enrollment (student_id, course_id, score) VALUES (21, 3, 65);
INSERT INTO enrollment (student_id, course_id, score) VALUES (21, 5, 99);
INSERT INTO enrollment (student_id, course_id, score) VALUES (21, 10, 85);
INSERT INTO enrollment (student_id, course_id, score) VALUES (22, 1, 67);
