SELECT count(*) FROM author	library
SELECT name FROM member WHERE city = 'Lakeside'	library
SELECT title FROM book WHERE genre = 'Mystery'	library
SELECT T1.name, count(*) FROM author AS T1 JOIN book AS T2 ON T1.author_id = T2.author_id GROUP BY T1.author_id	library
SELECT title FROM book ORDER BY pages ASC LIMIT 1	library
SELECT T1.title FROM book AS T1 JOIN loan AS T2 ON T1.book_id = T2.book_id GROUP BY T1.book_id ORDER BY count(*) DESC LIMIT 1	library
SELECT DISTINCT T1.name FROM member AS T1 JOIN loan AS T2 ON T1.member_id = T2.member_id WHERE T2.return_date IS NULL	library
SELECT country FROM author GROUP BY country HAVING count(*) > 1	library
SELECT T2.title FROM author AS T1 JOIN book AS T2 ON T1.author_id = T2.author_id WHERE T1.birth_year > 1980 AND T2.year_published > 2000	library
SELECT DISTINCT T1.name FROM member AS T1 JOIN loan AS T2 ON T1.member_id = T2.member_id JOIN book AS T3 ON T2.book_id = T3.book_id JOIN author AS T4 ON T3.author_id = T4.author_id WHERE T4.name = 'Claire Dubois'	library
SELECT count(*) FROM teacher	school
SELECT name FROM student WHERE grade_level = 12	school
SELECT title FROM course ORDER BY title	school
SELECT city, avg(age) FROM student GROUP BY city	school
SELECT name FROM teacher ORDER BY hire_year LIMIT 1	school
SELECT T1.name FROM student AS T1 JOIN enrollment AS T2 ON T1.student_id = T2.student_id JOIN course AS T3 ON T2.course_id = T3.course_id WHERE T3.title = 'Intro to Programming'	school
SELECT T1.name FROM department AS T1 JOIN teacher AS T2 ON T1.dept_id = T2.dept_id GROUP BY T1.dept_id HAVING avg(T2.salary) > 55000	school
SELECT DISTINCT T1.name FROM student AS T1 JOIN enrollment AS T2 ON T1.student_id = T2.student_id WHERE T2.score < (SELECT avg(score) FROM enrollment)	school
SELECT T1.title, count(*) FROM course AS T1 JOIN enrollment AS T2 ON T1.course_id = T2.course_id GROUP BY T1.course_id ORDER BY count(*) DESC	school
SELECT name FROM teacher WHERE teacher_id NOT IN (SELECT teacher_id FROM course WHERE teacher_id IS NOT NULL)	school
SELECT count(*) FROM product	shop
SELECT name FROM customer WHERE city = 'Hillview'	shop
SELECT name, price FROM product WHERE category = 'Stationery' ORDER BY price	shop
SELECT T1.name, count(*) FROM customer AS T1 JOIN orders AS T2 ON T1.customer_id = T2.customer_id GROUP BY T1.customer_id	shop
SELECT name FROM product ORDER BY price LIMIT 1	shop
SELECT DISTINCT T3.name FROM customer AS T1 JOIN orders AS T2 ON T1.customer_id = T2.customer_id JOIN order_item AS T4 ON T2.order_id = T4.order_id JOIN product AS T3 ON T4.product_id = T3.product_id WHERE T1.city = 'Lakeside'	shop
SELECT status FROM orders GROUP BY status HAVING count(*) > 4	shop
SELECT DISTINCT T1.name FROM customer AS T1 JOIN orders AS T2 ON T1.customer_id = T2.customer_id WHERE T2.status = 'cancelled'	shop
SELECT name FROM product WHERE price > (SELECT max(price) FROM product WHERE category = 'Kitchen')	shop
SELECT T1.category, sum(T1.price * T2.quantity) FROM product AS T1 JOIN order_item AS T2 ON T1.product_id = T2.product_id GROUP BY T1.category	shop
SELECT count(*) FROM player	league
SELECT name FROM team WHERE city = 'Portvale'	league
SELECT name, capacity FROM stadium ORDER BY capacity DESC	league
SELECT position, count(*) FROM player GROUP BY position	league
SELECT name FROM player ORDER BY age DESC LIMIT 1	league
SELECT T2.name FROM team AS T1 JOIN player AS T2 ON T1.team_id = T2.team_id WHERE T1.name = 'Harbor Hawks'	league
SELECT T1.name FROM team AS T1 JOIN stadium AS T2 ON T1.team_id = T2.team_id ORDER BY T2.capacity DESC LIMIT 1	league
SELECT T1.name FROM team AS T1 JOIN player AS T2 ON T1.team_id = T2.team_id GROUP BY T1.team_id HAVING sum(T2.goals) > 20	league
SELECT name FROM player WHERE goals > (SELECT avg(goals) FROM player)	league
SELECT T1.name, T2.match_date FROM team AS T1 JOIN match AS T2 ON T1.team_id = T2.home_team_id WHERE T2.home_goals > 2	league
SELECT T1.name FROM team AS T1 JOIN stadium AS T2 ON T1.team_id = T2.team_id WHERE T1.founded < 1960 AND T2.capacity > 15000	league
